/**
 * The 3D preview: loads a model (or an avatar through its `.fst`) from the
 * gateway with three.js's loaders, asking for each file where Overte would
 * (src/assets/overte-rules.ts, shared with the upload checks): FBX textures
 * by base name in the texture base (beside the model, or the `.fst` texdir),
 * the `.fst` scale applied. Draco meshes and KTX2 textures are decoded with
 * three.js's decoders served from our own /static/ build.
 */
import * as THREE from 'three'
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js'
import { DRACOLoader } from 'three/examples/jsm/loaders/DRACOLoader.js'
import { FBXLoader } from 'three/examples/jsm/loaders/FBXLoader.js'
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js'
import { KTX2Loader } from 'three/examples/jsm/loaders/KTX2Loader.js'
import { MTLLoader } from 'three/examples/jsm/loaders/MTLLoader.js'
import { OBJLoader } from 'three/examples/jsm/loaders/OBJLoader.js'
import { parseFst } from '../src/assets/fst.ts'
import { fstScale, fstUrls, GLTF_EXTENSIONS_OVERTE_IGNORES, previewFbxTextureUrl } from '../src/assets/overte-rules.ts'

const frame = document.querySelector<HTMLElement>('[data-preview]')
const canvas = document.querySelector<HTMLCanvasElement>('[data-preview-canvas]')
const spinner = document.querySelector<HTMLElement>('[data-preview-spinner]')
const errorBox = document.querySelector<HTMLElement>('[data-preview-error]')
const notesBox = document.querySelector<HTMLElement>('[data-preview-notes]')

const IMAGE = /\.(?:png|jpe?g|tga|webp|bmp|gif|ktx2?|dds|tiff?)(?:$|[?#])/i

/** What to load and how: the model's URL, where its textures are, and the `.fst` scale. */
interface Target { modelUrl: string, textureBase: string, scale: number, via?: string }

async function resolveTarget (url: string): Promise<Target> {
  if (!new URL(url).pathname.toLowerCase().endsWith('.fst')) return { modelUrl: url, textureBase: new URL('.', url).href, scale: 1 }
  const res = await fetch(url)
  if (!res.ok) throw new Error(`the .fst answered ${res.status}`)
  const fst = parseFst(await res.text())
  const lookup = { filename: fst.get('filename'), texdir: fst.get('texdir'), baseURL: fst.get('baseURL'), scale: fstScale(fst.get('scale')) }
  const { model, textureBase } = fstUrls(url, lookup)
  if (model === undefined || textureBase === undefined) throw new Error('the .fst names no model ("filename" line)')
  return { modelUrl: model, textureBase, scale: lookup.scale, via: url }
}

async function loadObj (target: Target, manager: THREE.LoadingManager): Promise<THREE.Object3D> {
  // OBJ names its materials in a separate file, relative to the OBJ; their textures come from the texture base.
  const text = await (await fetch(target.modelUrl)).text()
  const loader = new OBJLoader(manager)
  const mtllib = /^\s*mtllib\s+(.+?)\s*$/m.exec(text)?.[1]
  if (mtllib !== undefined) {
    const materials = await new MTLLoader(manager).setResourcePath(target.textureBase).loadAsync(new URL(mtllib, target.modelUrl).href).catch(() => undefined)
    if (materials !== undefined) { materials.preload(); loader.setMaterials(materials) }
  }
  return loader.parse(text)
}

interface Loaded { object: THREE.Object3D, notes: string[] }

async function loadModel (target: Target, renderer: THREE.WebGLRenderer): Promise<Loaded> {
  const ext = new URL(target.modelUrl).pathname.split('.').pop()?.toLowerCase() ?? ''
  const manager = new THREE.LoadingManager()
  switch (ext) {
    case 'fbx': {
      // FBXLoader asks for the folder the FBX stored; Overte asks for the base name in the texture base.
      manager.setURLModifier((requested) => IMAGE.test(requested) ? previewFbxTextureUrl(requested, target.textureBase) : requested)
      return { object: await new FBXLoader(manager).loadAsync(target.modelUrl), notes: [] }
    }
    case 'gltf':
    case 'glb':
    case 'vrm': {
      const decoders = frame?.dataset
      const loader = new GLTFLoader(manager)
      loader.setDRACOLoader(new DRACOLoader(manager).setDecoderPath(decoders?.dracoPath ?? ''))
      loader.setKTX2Loader(new KTX2Loader(manager).setTranscoderPath(decoders?.basisPath ?? '').detectSupport(renderer))
      const gltf = await loader.loadAsync(target.modelUrl)
      const json = gltf.parser.json as { extensionsUsed?: string[] }
      const notes = (json.extensionsUsed ?? []).flatMap((name) => {
        const why = GLTF_EXTENSIONS_OVERTE_IGNORES[name]
        return why === undefined ? [] : [`Shown here, but not in Overte: ${why}.`]
      })
      return { object: gltf.scene, notes }
    }
    case 'obj': return { object: await loadObj(target, manager), notes: [] }
    default: throw new Error(`cannot preview .${ext} files`)
  }
}

/** Triangles three.js will draw: zero means the model loaded but shows nothing. */
function drawableTriangles (object: THREE.Object3D): number {
  let triangles = 0
  object.traverseVisible((node) => {
    const mesh = node as THREE.Mesh
    if (mesh.isMesh !== true) return
    const geometry = mesh.geometry
    const count = geometry.index?.count ?? geometry.getAttribute('position')?.count ?? 0
    triangles += Math.floor(count / 3)
  })
  return triangles
}

function fitCamera (camera: THREE.PerspectiveCamera, controls: OrbitControls, object: THREE.Object3D): void {
  const box = new THREE.Box3().setFromObject(object)
  const size = box.getSize(new THREE.Vector3()).length() || 1
  const center = box.getCenter(new THREE.Vector3())
  controls.target.copy(center)
  camera.near = size / 100
  camera.far = size * 100
  camera.position.copy(center).add(new THREE.Vector3(size * 0.6, size * 0.45, size * 0.8))
  camera.updateProjectionMatrix()
  controls.update()
}

const THUMBNAIL_SIZE = 256

/**
 * Sends a square picture of what the canvas shows as the thumbnail of the
 * viewer's uploads of this content (the server keeps the first one only).
 */
async function sendThumbnail (source: HTMLCanvasElement, url: string, csrf: string): Promise<string> {
  const side = Math.min(source.width, source.height)
  const square = document.createElement('canvas')
  square.width = THUMBNAIL_SIZE
  square.height = THUMBNAIL_SIZE
  square.getContext('2d')?.drawImage(source, (source.width - side) / 2, (source.height - side) / 2, side, side, 0, 0, THUMBNAIL_SIZE, THUMBNAIL_SIZE)
  const blob = await new Promise<Blob | null>((resolve) => { square.toBlob(resolve, 'image/webp', 0.8) })
  if (blob === null) return 'failed'
  const res = await fetch(url, { method: 'POST', body: blob, headers: { 'Content-Type': blob.type, 'X-CSRF-Token': csrf }, credentials: 'same-origin' })
  if (!res.ok) return 'failed'
  const { saved } = await res.json() as { saved: number }
  return saved > 0 ? 'saved' : 'kept'
}

function say (box: HTMLElement | null, text: string): void {
  if (box === null) return
  box.textContent = text
  box.hidden = false
}

async function start (): Promise<void> {
  if (frame === null || canvas === null) return
  const url = frame.dataset.modelUrl ?? ''
  // preserveDrawingBuffer lets tests (and screenshots) read the rendered pixels.
  const renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true })
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2))
  const scene = new THREE.Scene()
  scene.background = new THREE.Color(0x1d2230)
  scene.add(new THREE.HemisphereLight(0xffffff, 0x444466, 2.2))
  const sun = new THREE.DirectionalLight(0xffffff, 2)
  sun.position.set(3, 5, 4)
  scene.add(sun)
  const camera = new THREE.PerspectiveCamera(45, 1, 0.01, 1000)
  const controls = new OrbitControls(camera, canvas)
  controls.enableDamping = true

  const resize = (): void => {
    const { clientWidth: width, clientHeight: height } = canvas
    renderer.setSize(width, height, false)
    camera.aspect = width / Math.max(height, 1)
    camera.updateProjectionMatrix()
  }
  new ResizeObserver(resize).observe(canvas)
  resize()
  renderer.setAnimationLoop(() => { controls.update(); renderer.render(scene, camera) })

  try {
    const target = await resolveTarget(url)
    frame.dataset.loadedModel = target.modelUrl
    frame.dataset.textureBase = target.textureBase
    const { object, notes } = await loadModel(target, renderer)
    object.scale.multiplyScalar(target.scale)
    scene.add(object)
    if (notes.length > 0) say(notesBox, notes.join(' '))
    if (drawableTriangles(object) === 0 || new THREE.Box3().setFromObject(object).isEmpty()) {
      frame.dataset.state = 'empty'
      say(errorBox, 'The model loaded, but it has nothing to draw: no visible triangles. Overte would show nothing either, or the file uses something three.js cannot read.')
      return
    }
    fitCamera(camera, controls, object)
    frame.dataset.state = 'loaded'
    const thumbnailUrl = frame.dataset.thumbnailUrl
    if (thumbnailUrl !== undefined) {
      // Two frames after the camera moved, the canvas shows the fitted model.
      requestAnimationFrame(() => requestAnimationFrame(() => {
        sendThumbnail(canvas, thumbnailUrl, frame.dataset.csrf ?? '')
          .then((outcome) => { frame.dataset.thumbnail = outcome })
          .catch(() => { frame.dataset.thumbnail = 'failed' })
      }))
    }
  } catch (err) {
    frame.dataset.state = 'error'
    // A loader's own failure (three.js's FBXLoader trips on some valid FBX: a colour layer without colours) is not the file's.
    const internal = err instanceof TypeError || err instanceof RangeError
    say(errorBox, internal
      ? `This preview could not read the model (its three.js loader failed: ${err.message}). Overte reads models with its own loader and may still load it.`
      : `The model could not be loaded: ${err instanceof Error ? err.message : String(err)}`)
  } finally {
    spinner?.remove()
  }
}

void start()
