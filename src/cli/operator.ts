import { userInfo } from 'node:os'

/** Who runs an operator command: the user behind sudo when there is one, else the OS user. */
export function operatorName (): string {
  const sudo = process.env.SUDO_USER
  if (sudo !== undefined && sudo !== '') return sudo
  try {
    return userInfo().username
  } catch {
    return process.env.USER ?? 'unknown'
  }
}
