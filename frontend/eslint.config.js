// ESLint (flat config): typescript-eslint with type information, the rules of hooks, and the
// import contract of the dashboard's layout (specs/frontend.md, "Boundaries").
import { readdirSync } from "node:fs";
import js from "@eslint/js";
import importPlugin from "eslint-plugin-import";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

/** Every folder under src/features is a feature; a new one is under the contract at once. */
const FEATURES = readdirSync(new URL("./src/features", import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

/**
 * The import contract (bulletproof-react): a feature imports another only through its public
 * entry (`@/features/<name>`, its index.ts); shared code (lib/, components/, api/) imports no
 * feature and not the app; features do not import the app, which composes them.
 */
const boundaries = [
  ...FEATURES.map((feature) => ({
    target: `./src/features/${feature}`,
    from: "./src/features",
    except: [`./${feature}`, ...FEATURES.filter((other) => other !== feature).map((other) => `./${other}/index.ts`)],
    message: `features/${feature} may import another feature only through its public entry, "@/features/<name>".`,
  })),
  {
    target: ["./src/lib", "./src/components", "./src/api"],
    from: ["./src/features", "./src/app"],
    message: "Shared code (lib/, components/, api/) must not depend on features or the app: pass it what it needs.",
  },
  {
    target: "./src/features",
    from: "./src/app",
    message: "Features must not import the app: the app composes features.",
  },
];

export default tseslint.config(
  { ignores: ["dist", "node_modules", "test-results", "src/api/schema.d.ts"] },
  js.configs.recommended,
  tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.browser },
    },
    rules: {
      // Counts and ids in messages and URLs are numbers; everything else must be a string.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      // `onClick={() => setOpen(true)}`: the arrow's value is plainly unused.
      "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
    },
  },
  {
    files: ["src/**/*.{ts,tsx}"],
    plugins: { "react-hooks": reactHooks, import: importPlugin },
    settings: {
      // eslint-plugin-import parses TS modules to follow their imports (import/no-cycle).
      ...importPlugin.flatConfigs.typescript.settings,
      "import/resolver": { typescript: { project: "./tsconfig.app.json" }, node: true },
      // `@/…` is this app (vite alias), not a scoped package: import/no-cycle follows it.
      "import/internal-regex": "^@/",
    },
    rules: {
      ...reactHooks.configs.recommended.rules,
      "import/no-restricted-paths": ["error", { zones: boundaries }],
      "import/no-cycle": "error",
      "import/no-unresolved": "error",
      // Query keys come from each feature's factory (api/keys.ts), never written in place.
      "no-restricted-syntax": [
        "error",
        {
          selector: "Property[key.name='queryKey'] > ArrayExpression",
          message: "Use the feature's query-key factory (e.g. historyKeys.list(filters)), not an inline array.",
        },
        {
          selector:
            "CallExpression[callee.property.name=/^(get|set|ensure|fetch|prefetch)Query(Data|State)?$/] > ArrayExpression.arguments",
          message: "Use the feature's query-key factory (e.g. authKeys.me(token)), not an inline array.",
        },
      ],
    },
  },
  {
    // A wrong `rows[0]!` in a test fails that test at once, which is what a test is for.
    files: ["src/**/__tests__/**", "src/testing/**", "e2e/**"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
  {
    files: ["e2e/**/*.ts", "*.config.ts"],
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { ...globals.node } },
  },
);
