import { useState } from "react";

/** Copies `text`, then says so for two seconds. */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [copied, setCopied] = useState<"yes" | "failed" | null>(null);
  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setCopied("yes");
    } catch {
      setCopied("failed");
    }
    setTimeout(() => setCopied(null), 2_000);
  }
  return (
    <button type="button" className="button button--small" onClick={() => void copy()}>
      {copied === "yes" ? "Copied" : copied === "failed" ? "Copy failed" : label}
    </button>
  );
}
