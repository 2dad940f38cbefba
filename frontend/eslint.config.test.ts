/**
 * The import contract of eslint.config.js, shown on code that breaks it: a change to the
 * config that stopped catching these would otherwise pass unnoticed (lint would just be
 * green).
 */
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";

const eslint = new ESLint({
  cwd: import.meta.dirname,
  // The snippets are not files on disk: lint them without type information, and without
  // import/no-cycle, which reads every module of a cycle from disk.
  overrideConfig: [tseslint.configs.disableTypeChecked, { files: ["src/**"], rules: { "import/no-cycle": "off" } }],
});

async function problems(path: string, code: string): Promise<string[]> {
  const results = await eslint.lintText(code, { filePath: path });
  return results.flatMap((result) => result.messages.map((m) => `${m.ruleId ?? "parse"}: ${m.message}`));
}

// The first lint loads the resolver and the plugins: seconds on a busy machine.
describe("the dashboard's import contract", { timeout: 30_000 }, () => {
  it("lets a feature use another through its public entry", async () => {
    expect(await problems("src/features/history/x.ts", 'export { useLiveEvents } from "@/features/live";\n')).toEqual(
      [],
    );
  });

  it("refuses a file inside another feature", async () => {
    const found = await problems(
      "src/features/history/x.ts",
      'export { MetricsCards } from "@/features/monitoring/components/metrics-cards";\n',
    );
    expect(found).toEqual([expect.stringContaining("import/no-restricted-paths: Unexpected path")]);
  });

  it("refuses a feature, or the app, in shared code", async () => {
    expect(await problems("src/lib/x.ts", 'export { useMe } from "@/features/auth";\n')).toEqual([
      expect.stringContaining("must not depend on features or the app"),
    ]);
    expect(await problems("src/components/x.ts", 'export { App } from "@/app";\n')).toEqual([
      expect.stringContaining("must not depend on features or the app"),
    ]);
  });

  it("refuses a query key written in place of the feature's factory", async () => {
    const found = await problems(
      "src/features/queues/x.ts",
      'import { useQuery } from "@tanstack/react-query";\n' +
        'export const useX = () => useQuery({ queryKey: ["queues"], queryFn: () => 1 });\n',
    );
    expect(found).toEqual([expect.stringContaining("query-key factory")]);
  });
});
