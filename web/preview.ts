/**
 * The 3D preview: loads a model from the gateway with three.js's own loaders,
 * so relative textures resolve exactly as they will for Overte.
 */
import * as THREE from 'three'
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js'
import { FBXLoader } from 'three/examples/jsm/loaders/FBXLoader.js'
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js'
import { MTLLoader } from 'three/examples/jsm/loaders/MTLLoader.js'
import { OBJLoader } from 'three/examples/jsm/loaders/OBJLoader.js'

const frame = document.querySelector<HTMLElement>('[data-preview]')
const canvas = document.querySelector<HTMLCanvasElement>('[data-preview-canvas]')
const spinner = document.querySelector<HTMLElement>('[data-preview-spinner]')
const errorBox = document.querySelector<HTMLElement>('[data-preview-error]')

async function loadObj (url: string): Promise<THREE.Object3D> {
  // OBJ names its materials in a separate file: load that first, relative to the OBJ.
  const text = await (await fetch(url)).text()
  const loader = new OBJLoader()
  const mtllib = /^\s*mtllib\s+(.+?)\s*$/m.exec(text)?.[1]
  if (mtllib !== undefined) {
    const materials = await new MTLLoader().setResourcePath(new URL('.', url).href).loadAsync(new URL(mtllib, url).href).catch(() => undefined)
    if (materials !== undefined) { materials.preload(); loader.setMaterials(materials) }
  }
  return loader.parse(text)
}

async function loadModel (url: string): Promise<THREE.Object3D> {
  const ext = new URL(url).pathname.split('.').pop()?.toLowerCase() ?? ''
  switch (ext) {
    case 'fbx': return new FBXLoader().loadAsync(url)
    case 'gltf':
    case 'glb':
    case 'vrm': return (await new GLTFLoader().loadAsync(url)).scene
    case 'obj': return loadObj(url)
    default: throw new Error(`cannot preview .${ext} files`)
  }
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
    const model = await loadModel(url)
    scene.add(model)
    fitCamera(camera, controls, model)
    frame.dataset.state = 'loaded'
  } catch (err) {
    frame.dataset.state = 'error'
    if (errorBox !== null) {
      errorBox.textContent = `The model could not be loaded: ${err instanceof Error ? err.message : String(err)}`
      errorBox.hidden = false
    }
  } finally {
    spinner?.remove()
  }
}

void start()
