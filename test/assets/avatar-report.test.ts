import { describe, expect, it } from 'vitest'
import { buildAvatarReport } from '../../src/assets/avatar-report.ts'
import { inspectorFor } from '../../src/assets/file-inspectors.ts'
import { REQUIRED_HUMANOID_JOINTS } from '../../src/assets/overte-rules.ts'
import { blenderAvatar } from '../support/fixtures.ts'

function report (files: Record<string, Buffer | string>): ReturnType<typeof buildAvatarReport> {
  const reports = Object.entries(files).map(([path, data]) => {
    const inspector = inspectorFor(path)
    inspector.write(typeof data === 'string' ? Buffer.from(data) : data)
    return inspector.end()
  })
  const sizes = new Map(Object.entries(files).map(([path, data]) => [path, Buffer.byteLength(data)]))
  return buildAvatarReport(Object.keys(files).find((p) => p.endsWith('.fst')) ?? null, reports, sizes)
}

/** What make_avatar.py builds: the humanoid skeleton with the hips named Pelvis, 1.8 m, 12 triangles, one 64×64 texture, three shape keys. */
const BLENDER = { joints: 25, height: 1.8, triangles: 12, materials: 1, texture: { width: 64, height: 64 } }

describe('the avatar report of the Blender avatar', () => {
  const fst = blenderAvatar('avatar.fst').toString()
  const files = { 'avatar.fst': fst, 'avatar.fbx': blenderAvatar('avatar.fbx'), 'textures/skin.png': blenderAvatar('textures/skin.png') }

  it('reads the skeleton, applies jointMap (Hips = Pelvis), and finds every required joint', () => {
    const r = report(files)
    expect(r?.joints).toHaveLength(BLENDER.joints)
    expect(r?.joints[0]).toEqual({ name: 'Pelvis', overteName: 'Hips' })
    expect(r?.missingJoints).toEqual([])
    expect(r?.lines.find((l) => l.check === 'skeleton')).toMatchObject({ status: 'pass', detail: expect.stringContaining('1 renamed by jointMap') as unknown })
  })

  it('without the jointMap, Hips is missing: an error that says how to fix it', () => {
    const r = report({ ...files, 'avatar.fst': fst.replace('jointMap = Hips = Pelvis\n', '') })
    expect(r?.missingJoints).toEqual(['Hips'])
    expect(r?.lines.find((l) => l.check === 'skeleton')).toMatchObject({ status: 'error', detail: expect.stringContaining('jointMap = Overte name = your name') as unknown })
    expect(REQUIRED_HUMANOID_JOINTS).toContain('Hips')
  })

  it('gives the height in metres with the .fst scale, triangles, materials, textures and blendshapes', () => {
    const r = report(files)
    expect(r).toMatchObject({ heightMetres: BLENDER.height, scale: 1, triangles: BLENDER.triangles, materials: BLENDER.materials, blendshapes: ['EyeBlink_L', 'EyeBlink_R', 'JawOpen'] })
    expect(r?.textures).toEqual([{ path: 'textures/skin.png', embedded: false, bytes: blenderAvatar('textures/skin.png').length, ...BLENDER.texture }])
    expect(report({ ...files, 'avatar.fst': fst.replace('scale = 1', 'scale = 0.5') })?.heightMetres).toBe(0.9)
    expect(r?.lines.map((l) => `${l.check}:${l.status}`)).toEqual([
      'model:pass', 'skeleton:pass', 'eyes and head top:pass', 'height:pass', 'triangles and materials:pass', 'textures:pass', 'blinks:pass', 'speech:pass'
    ])
  })

  it('counts an embedded texture with its bytes, and warns for a height that looks like a units mistake', () => {
    const r = report({ 'avatar.fst': fst.replace('avatar.fbx', 'embedded.fbx').replace('scale = 1', 'scale = 100'), 'embedded.fbx': blenderAvatar('avatar-embedded.fbx') })
    expect(r?.textures).toEqual([{ path: 'avatar-embedded.fbm/skin.png', embedded: true, bytes: blenderAvatar('textures/skin.png').length, width: undefined, height: undefined }])
    expect(r?.lines.find((l) => l.check === 'height')).toMatchObject({ status: 'warning', detail: expect.stringMatching(/^180 m tall with scale = 100/) as unknown })
  })

  it('is null for an upload without an .fst', () => {
    expect(report({ 'avatar.fbx': blenderAvatar('avatar.fbx') })).toBeNull()
  })

  it('reads a glTF avatar (the Overte exporters write .fst + .glb) the same way: skin joints, metres, target names, embedded or separate images', () => {
    const glbFst = fst.replace('avatar.fbx', 'avatar.glb')
    const glb = report({ 'avatar.fst': glbFst, 'avatar.glb': blenderAvatar('avatar.glb') })
    expect(glb).toMatchObject({ heightMetres: BLENDER.height, triangles: BLENDER.triangles, materials: BLENDER.materials, missingJoints: [], blendshapes: ['EyeBlink_L', 'EyeBlink_R', 'JawOpen'] })
    expect(glb?.joints).toHaveLength(BLENDER.joints)
    expect(glb?.textures).toEqual([{ path: 'avatar.glb image 0', embedded: true, bytes: expect.any(Number) as unknown, width: undefined, height: undefined }])
    const gltf = report({ 'avatar.fst': fst.replace('avatar.fbx', 'avatar.gltf'), 'avatar.gltf': blenderAvatar('gltf/avatar.gltf'), 'avatar.bin': blenderAvatar('gltf/avatar.bin'), 'skin.png': blenderAvatar('gltf/skin.png') })
    expect(gltf?.textures).toEqual([{ path: 'skin.png', embedded: false, bytes: blenderAvatar('gltf/skin.png').length, ...BLENDER.texture }])
    expect(gltf?.lines.map((l) => `${l.check}:${l.status}`)).toEqual([
      'model:pass', 'skeleton:pass', 'eyes and head top:pass', 'height:pass', 'triangles and materials:pass', 'textures:pass', 'blinks:pass', 'speech:pass'
    ])
  })

  it('counts ReadyPlayerMe\'s blendshape names as Overte drives them (its glTF reader maps them when no .fst bs line does)', () => {
    const rpm = ['browOuterUpLeft', 'browInnerUp', 'browDownLeft', 'eyeBlinkLeft', 'eyeBlinkRight', 'eyeWideLeft', 'mouthLeft', 'viseme_O', 'mouthShrugLower', 'mouthOpen', 'mouthSmile']
    const doc = JSON.parse(blenderAvatar('gltf/avatar.gltf').toString()) as { meshes: Array<{ extras?: { targetNames?: string[] } }> }
    for (const mesh of doc.meshes) mesh.extras = { targetNames: rpm }
    const files = { 'avatar.gltf': JSON.stringify(doc), 'avatar.bin': blenderAvatar('gltf/avatar.bin'), 'skin.png': blenderAvatar('gltf/skin.png') }
    const lines = (fstText: string): string[] => report({ 'avatar.fst': fstText, ...files })?.lines.filter((l) => l.check === 'blinks' || l.check === 'speech').map((l) => `${l.check}:${l.status}`) ?? []
    expect(lines('name = rpm\nfilename = avatar.gltf\n')).toEqual(['blinks:pass', 'speech:pass'])
    // With a bs line, Overte maps only what the .fst says.
    expect(lines('name = rpm\nfilename = avatar.gltf\nbs = Puff = mouthLeft = 1\n')).toEqual(['blinks:warning', 'speech:warning'])
  })
})
