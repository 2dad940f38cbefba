import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface, type Interface } from "node:readline";

export const BACKEND = resolve(import.meta.dirname, "../../backend");

export type StackInfo = {
  url: string;
  operator: string;
  viewer: string;
  repository: string;
  github_user: string;
  database_url: string;
};

/**
 * The real distributed TaskLens (API, worker, PostgreSQL, Redis, a git repository and the
 * GitHub replay server), run by backend/tests/e2e_stack.py, which these tests drive.
 */
export class E2EStack {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: Interface,
    readonly info: StackInfo,
    readonly workdir: string,
  ) {}

  /** `alerts`: the API evaluates e2e_stack.py's one alert rule every second. */
  static async start(options: { alerts?: boolean } = {}): Promise<E2EStack> {
    const workdir = mkdtempSync(join(tmpdir(), "tasklens-e2e-"));
    const child = spawn(join(BACKEND, ".venv/bin/python"), [join(BACKEND, "tests/e2e_stack.py"), workdir], {
      cwd: join(BACKEND, "tests"),
      env: { ...process.env, PYTHONUNBUFFERED: "1", TASKLENS_E2E_ALERTS: options.alerts ? "1" : "0" },
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const lines = createInterface({ input: child.stdout });
    const first = await new Promise<string>((resolveLine, reject) => {
      lines.once("line", resolveLine);
      child.once("exit", (code) => reject(new Error(`e2e stack exited (${code}):\n${stderr}`)));
    });
    return new E2EStack(child, lines, JSON.parse(first) as StackInfo, workdir);
  }

  /** Stops the API process and starts a new one on the same port, as a deploy would. */
  async restartApi(): Promise<void> {
    const done = new Promise<void>((ok, fail) => {
      this.lines.once("line", () => ok());
      this.child.once("exit", () => fail(new Error(`the e2e stack exited; see ${this.workdir}/api.log`)));
    });
    this.child.stdin.write("restart-api\n");
    await done;
  }

  async stop(): Promise<void> {
    const exited = new Promise((ok) => this.child.once("exit", ok));
    this.child.stdin.write("stop\n");
    await exited;
  }

  /** Calls the real API with the operator's token (setting up what a test needs). */
  async api(path: string, init: { method?: string; body?: unknown } = {}): Promise<unknown> {
    const response = await fetch(this.info.url + path, {
      method: init.method ?? "GET",
      headers: { Authorization: `Bearer ${this.info.operator}`, "Content-Type": "application/json" },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    if (!response.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${response.status} ${await response.text()}`);
    return response.json();
  }
}
