import { FolderReadError, isHidden, type FolderFile } from './zip-writer.ts'

/**
 * Every file under a dropped folder, by its path inside it, hidden ones left
 * out. A directory reader gives its entries in batches (100 at a time in
 * Chromium) until it gives none; a batch's files are asked for together.
 * Links are not seen: Chromium's directory reader leaves them out.
 */
export async function droppedFolderFiles (folder: FileSystemDirectoryEntry, onListed: (count: number) => void = () => {}, signal?: AbortSignal): Promise<FolderFile[]> {
  const files: FolderFile[] = []
  const walk = async (directory: FileSystemDirectoryEntry, prefix: string): Promise<void> => {
    const reader = directory.createReader()
    for (;;) {
      signal?.throwIfAborted()
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => { reader.readEntries(resolve, (err) => { reject(new FolderReadError(prefix === '' ? folder.name : prefix.slice(0, -1), err)) }) })
      if (batch.length === 0) return
      // Chromium names an entry "" when its name is not valid UTF-8 (and cannot open it): said as such.
      const visible = batch.map((entry) => ({ entry, path: `${prefix}${entry.name === '' ? '(a file whose name is not UTF-8)' : entry.name}` })).filter(({ path }) => !isHidden(path))
      files.push(...await Promise.all(visible.filter(({ entry }) => entry.isFile).map(async ({ entry, path }) => ({
        path,
        // A name the system cannot give back (not UTF-8, say) fails here: said with its path.
        file: await new Promise<File>((resolve, reject) => { (entry as FileSystemFileEntry).file(resolve, (err) => { reject(new FolderReadError(path, err)) }) })
      }))))
      onListed(files.length)
      for (const { entry, path } of visible) if (entry.isDirectory) await walk(entry as FileSystemDirectoryEntry, `${path}/`)
    }
  }
  await walk(folder, '')
  return files
}

/**
 * A folder picker's choice (`<input webkitdirectory>`): its folders by
 * name, each file's `webkitRelativePath` starting with its folder's name,
 * and the files that came without one (a browser that picks files, not
 * folders, as on phones).
 */
export function pickedFolders (list: Iterable<File>): { folders: Map<string, FolderFile[]>, loose: File[] } {
  const folders = new Map<string, FolderFile[]>()
  const loose: File[] = []
  for (const file of list) {
    const [top = '', ...rest] = file.webkitRelativePath.split('/')
    const path = rest.join('/')
    if (top === '' || path === '') { loose.push(file); continue }
    // A folder of hidden files only is still named, to be told it has nothing to send.
    const folder = folders.get(top) ?? []
    folders.set(top, folder)
    if (!isHidden(path)) folder.push({ path, file })
  }
  return { folders, loose }
}
