import { describe, expect, it } from 'vitest'
import { parseFst } from '../../src/assets/fst.ts'

describe('parseFst', () => {
  const fst = parseFst([
    '# exported by the Overte avatar packager',
    'name = Hero',
    'type=body+head',
    'scale = 1',
    'filename = hero.fbx',
    'texdir = textures',
    'script = a.js',
    'script = b.js',
    'joint = jointRoot = Hips',
    'joint = jointLean = Spine',
    'jointMap = Hips = mixamorig:Hips',
    'bs = EyeBlink_L = Blink_Left = 1',
    'materialMap = {"all": "mat.json"}',
    'filename = later.fbx',
    'not a key value line',
    ''
  ].join('\n'))

  it('reads key = value lines, later lines winning', () => {
    expect(fst.get('name')).toBe('Hero')
    expect(fst.get('type')).toBe('body+head')
    expect(fst.get('filename')).toBe('later.fbx')
    expect(fst.get('texdir')).toBe('textures')
  })

  it('keeps repeated keys in order', () => {
    expect(fst.all('script').map((e) => e.value)).toEqual(['a.js', 'b.js'])
  })

  it('reads key = sub = value forms', () => {
    expect(fst.all('joint').map((e) => [e.sub, e.value])).toEqual([['jointRoot', 'Hips'], ['jointLean', 'Spine']])
    expect(fst.all('jointMap')[0]).toMatchObject({ sub: 'Hips', value: 'mixamorig:Hips' })
    expect(fst.all('bs')[0]).toMatchObject({ sub: 'EyeBlink_L', value: 'Blink_Left = 1' })
  })

  it('skips comments and lines without "=", and keeps line numbers', () => {
    expect(fst.entries.some((e) => e.key.startsWith('#'))).toBe(false)
    expect(fst.entries.find((e) => e.key === 'name')?.line).toBe(2)
  })

  it('keeps JSON values whole', () => {
    expect(fst.get('materialMap')).toBe('{"all": "mat.json"}')
  })
})
