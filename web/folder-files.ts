import { isHidden, type FolderFile } from './zip-writer.ts'

/**
 * Every file under a dropped folder, by its path inside it, hidden ones left
 * out. A directory reader gives its entries in batches (100 at a time in
 * Chromium) until it gives none.
 */
export async function droppedFolderFiles (folder: FileSystemDirectoryEntry): Promise<FolderFile[]> {
  const files: FolderFile[] = []
  const walk = async (directory: FileSystemDirectoryEntry, prefix: string): Promise<void> => {
    const reader = directory.createReader()
    for (;;) {
      const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => { reader.readEntries(resolve, reject) })
      if (batch.length === 0) return
      for (const entry of batch) {
        const path = `${prefix}${entry.name}`
        if (isHidden(path)) continue
        if (entry.isDirectory) await walk(entry as FileSystemDirectoryEntry, `${path}/`)
        else if (entry.isFile) files.push({ path, file: await new Promise<File>((resolve, reject) => { (entry as FileSystemFileEntry).file(resolve, reject) }) })
      }
    }
  }
  await walk(folder, '')
  return files
}

/**
 * The folders of a folder picker's choice (`<input webkitdirectory>`), by
 * name: each file's `webkitRelativePath` starts with the folder's name.
 */
export function pickedFolders (list: Iterable<File>): Map<string, FolderFile[]> {
  const folders = new Map<string, FolderFile[]>()
  for (const file of list) {
    const [top = '', ...rest] = file.webkitRelativePath.split('/')
    const path = rest.join('/')
    if (top === '' || path === '') continue
    // A folder of hidden files only is still named, to be told it has nothing to send.
    const folder = folders.get(top) ?? []
    folders.set(top, folder)
    if (!isHidden(path)) folder.push({ path, file })
  }
  return folders
}
