// Lint configuration: typescript-eslint's recommended rules plus the house rules of STYLE.md
// that a linter can check (no direct clock or randomness in pure cores).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "**/dist/", ".cache/", "**/*.generated.ts", "core/api/gen/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", Buffer: "readonly", setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly", setImmediate: "readonly", URL: "readonly", TextEncoder: "readonly", TextDecoder: "readonly" } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      eqeqeq: ["error", "always"],
    },
  },
  {
    // Pure cores: time and randomness are injected (STYLE.md, "In Trivet" 2).
    files: ["core/raft/**/*.ts", "core/state/apply*.ts"],
    ignores: ["**/*.test.ts", "core/raft/driver/**"],
    rules: {
      "no-restricted-properties": ["error",
        { object: "Date", property: "now", message: "inject a clock" },
        { object: "Math", property: "random", message: "inject a random source" }],
      "no-restricted-globals": ["error",
        { name: "setTimeout", message: "inject a clock" },
        { name: "setInterval", message: "inject a clock" }],
    },
  },
);
