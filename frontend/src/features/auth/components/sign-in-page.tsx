import { useDocumentTitle } from "@/lib/use-document-title";
import { useQueryClient } from "@tanstack/react-query";
import { useState, type SubmitEvent } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router";
import { ApiError } from "@/lib/api-client";
import { checkToken } from "../api/get-me";
import { authKeys } from "../api/keys";
import { setToken, signOutReason, type SignOutReason } from "@/lib/token-store";
import { useToken } from "@/lib/use-token";
import type { SignInState } from "./require-auth";

function destination(state: unknown): string {
  const from = (state as SignInState | null)?.from;
  return from && from.startsWith("/") && !from.startsWith("/sign-in") ? from : "/monitoring";
}

const REASONS: Record<SignOutReason, string> = {
  "link-rejected":
    "The token in your sign-in link was not accepted: it may have been revoked, or the link was cut short when it was copied. Paste a token, or ask an operator for a new link.",
  revoked:
    "You were signed out: your token is no longer accepted (it was revoked, or the server's tokens changed). Sign in with another token.",
};

export function SignInPage() {
  const token = useToken();
  const location = useLocation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [value, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [checking, setChecking] = useState(false);
  const next = destination(location.state);
  // A viewer switching to an operator token keeps the current one until the new one works.
  const asOperator = (location.state as SignInState | null)?.asOperator === true;
  const [reason] = useState(signOutReason);

  useDocumentTitle("Sign in");

  if (token !== null && !checking && !asOperator) return <Navigate to={next} replace />;

  async function onSubmit(event: SubmitEvent<HTMLFormElement>) {
    event.preventDefault();
    const candidate = value.trim();
    if (candidate === "") {
      setError("Paste an API token.");
      return;
    }
    setChecking(true);
    setError(null);
    try {
      const me = await checkToken(candidate);
      queryClient.setQueryData(authKeys.me(candidate), me);
      setToken(candidate);
      void navigate(next, { replace: true });
    } catch (e) {
      setError(
        e instanceof ApiError && e.status === 401
          ? "This token was not accepted."
          : `Could not check the token: ${e instanceof Error ? e.message : String(e)}`,
      );
    } finally {
      setChecking(false);
    }
  }

  return (
    <main className="sign-in">
      <form className="card sign-in__form" onSubmit={(event) => void onSubmit(event)} noValidate>
        <h1>{asOperator ? "Sign in as operator" : "Sign in to TaskLens"}</h1>
        {reason !== null && !asOperator && (
          <p className="notice notice--warn" role="status" data-testid="sign-in-reason">
            {REASONS[reason]}
          </p>
        )}
        <p className="muted">
          {asOperator
            ? "Paste an operator token to retry, cancel, refresh and queue tasks. Your current token stays until the new one is accepted."
            : "Paste an API token. Ask an operator if you do not have one."}
        </p>
        <label htmlFor="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellCheck={false}
          autoFocus
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        {error && (
          <p role="alert" className="error-text">
            {error}
          </p>
        )}
        <button type="submit" className="button button--primary" disabled={checking}>
          {checking ? "Checking…" : "Sign in"}
        </button>
        {asOperator && token !== null && (
          <Link to={next} className="small">
            Back without switching
          </Link>
        )}
      </form>
    </main>
  );
}
