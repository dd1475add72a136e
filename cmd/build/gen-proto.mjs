// Generates the TypeScript of the API from its one definition (core/api/proto/trivet/v1/*.proto)
// into core/api/gen/ with protoc (Debian's protobuf-compiler) and protoc-gen-es. With --check it
// generates into a temporary directory and fails when core/api/gen differs, so CI catches a
// proto edited without regenerating (or a generated file edited by hand).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const protoDir = path.join(root, "core/api/proto");
const genDir = path.join(root, "core/api/gen");
const plugin = path.join(root, "node_modules/.bin/protoc-gen-es");
const header = "// generated — do not edit: run `npm run gen:proto` (cmd/build/gen-proto.mjs) after changing core/api/proto.\n";

function listFiles(dir, ext) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.endsWith(ext)).sort();
}

function generate(outDir) {
  const protos = listFiles(protoDir, ".proto");
  if (protos.length === 0) throw new Error(`generating the API: no .proto files under ${protoDir}`);
  fs.mkdirSync(outDir, { recursive: true });
  try {
    execFileSync("protoc", [
      `--plugin=protoc-gen-es=${plugin}`,
      `--es_out=${outDir}`,
      "--es_opt=target=ts,import_extension=ts",
      `-I${protoDir}`,
      ...protos.map((p) => path.join(protoDir, p)),
    ], { stdio: ["ignore", "inherit", "inherit"] });
  } catch (err) {
    const hint = err.code === "ENOENT" ? " (protoc not found: apt-get install protobuf-compiler, or run cmd/install-deps.sh)" : "";
    throw new Error(`generating the API with protoc${hint}: ${err.message}`);
  }
  for (const f of listFiles(outDir, ".ts")) {
    const p = path.join(outDir, f);
    fs.writeFileSync(p, header + fs.readFileSync(p, "utf8"));
  }
}

function check() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "trivet-gen-"));
  try {
    generate(tmp);
    const want = listFiles(tmp, ".ts");
    const have = listFiles(genDir, ".ts");
    const stale = [...new Set([...want, ...have])].filter((f) => {
      const a = path.join(tmp, f);
      const b = path.join(genDir, f);
      return !fs.existsSync(a) || !fs.existsSync(b) || fs.readFileSync(a, "utf8") !== fs.readFileSync(b, "utf8");
    });
    if (stale.length > 0) {
      console.error(`core/api/gen is stale (differs from core/api/proto): ${stale.join(", ")}\nrun: npm run gen:proto`);
      process.exit(1);
    }
    console.log(`core/api/gen is up to date (${want.length} files)`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv.includes("--check")) {
  check();
} else {
  fs.rmSync(genDir, { recursive: true, force: true });
  generate(genDir);
  console.log(`generated ${listFiles(genDir, ".ts").length} files into ${path.relative(root, genDir)}`);
}
