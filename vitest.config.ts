// Test runner configuration: unit tests live beside the code, integration tests under test/.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["cmd/**/*.test.ts", "core/**/*.test.ts", "storage/**/*.test.ts", "ui/**/*.test.ts", "test/**/*.unit.test.ts"],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.unit.test.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
