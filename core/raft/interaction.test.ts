// Runs the scripted scenarios in core/raft/testdata/*.txt. Each file is a sequence of blocks:
//   command args
//   ----
//   expected output lines
// separated by blank lines; lines starting with '#' are comments. REWRITE=1 rewrites the
// expected outputs from the actual ones — every rewritten output must then be reviewed by hand.

import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InteractionEnv, parseCommand } from "./interaction-env.ts";

const dir = join(import.meta.dirname, "testdata");
const rewrite = process.env.REWRITE === "1";

interface Block {
  comments: string[];
  command: string;
  expected: string[];
}

function parse(text: string): { blocks: Block[]; trailer: string[] } {
  const lines = text.split("\n");
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.startsWith("#") || line.trim() === "") {
      comments.push(line);
      i++;
      continue;
    }
    if (lines[i + 1] !== "----") throw new Error(`line ${i + 2}: expected ---- after command "${line}"`);
    const expected: string[] = [];
    i += 2;
    while (i < lines.length && lines[i]!.trim() !== "") expected.push(lines[i++]!);
    blocks.push({ comments, command: line, expected });
    comments = [];
  }
  return { blocks, trailer: comments };
}

describe("raft interaction scenarios", () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".txt")).sort()) {
    it(file, () => {
      const path = join(dir, file);
      const { blocks, trailer } = parse(readFileSync(path, "utf8"));
      const env = new InteractionEnv();
      const out: string[] = [];
      for (const b of blocks) {
        const actual = env.handle(parseCommand(b.command));
        if (rewrite) {
          out.push(...b.comments, b.command, "----", ...actual);
        } else {
          expect(actual.join("\n"), `${file}: ${b.command}`).toBe(b.expected.join("\n"));
        }
      }
      if (rewrite) {
        while (trailer.length > 0 && trailer[trailer.length - 1] === "") trailer.pop();
        writeFileSync(path, [...out, ...trailer].join("\n") + "\n");
      }
    });
  }
});
