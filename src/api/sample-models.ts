/** The sample models shipped with the package (py/models), for examples and first tries. */
import { fileURLToPath } from 'node:url';

/** The absolute path of a shipped sample model, e.g. `sampleModel('add.py')`. */
export function sampleModel(file: string): string {
  return fileURLToPath(new URL(`../../../py/models/${file}`, import.meta.url));
}
