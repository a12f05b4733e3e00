// Generates TypeScript stubs from ../../../proto into gen/grpc with protoc-gen-es. protoc comes
// from PROTOC, or from the protoc-bin-vendored crate cargo already fetched for build.rs.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

function vendoredProtoc() {
  const registry = join(process.env.CARGO_HOME ?? join(homedir(), ".cargo"), "registry", "src");
  const found = [];
  for (const index of existsSync(registry) ? readdirSync(registry) : []) {
    for (const crate of readdirSync(join(registry, index))) {
      const bin = join(registry, index, crate, "bin", "protoc");
      if (crate.startsWith("protoc-bin-vendored-linux-x86_64-") && existsSync(bin)) found.push(bin);
    }
  }
  return found.sort().at(-1);
}

const protoc = process.env.PROTOC ?? vendoredProtoc();
if (!protoc) throw new Error("no protoc: set PROTOC, or run `cargo fetch` in the repository first");
const proto = new URL("../../../proto", import.meta.url).pathname;
const out = new URL("./gen/grpc", import.meta.url).pathname;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const files = readdirSync(join(proto, "polyport", "v1")).filter((f) => f.endsWith(".proto")).map((f) => join(proto, "polyport", "v1", f));
execFileSync(protoc, ["-I", proto, "--plugin=protoc-gen-es=node_modules/.bin/protoc-gen-es", `--es_out=${out}`, "--es_opt=target=ts,import_extension=js", ...files], { stdio: "inherit" });
console.log(`stubs for ${files.length} protos in gen/grpc`);
