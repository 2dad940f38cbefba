import type { ReactNode } from "react";
import { Navigate, useLocation } from "react-router";
import { useToken } from "@/lib/use-token";

/** Where sign-in returns to; `asOperator`: a viewer asked to switch to an operator token. */
export type SignInState = { from?: string; asOperator?: boolean };

/** Renders its children only with a token; otherwise (including after a 401 cleared it) goes to sign-in. */
export function RequireAuth({ children }: { children: ReactNode }) {
  const token = useToken();
  const location = useLocation();
  if (token === null) {
    const state: SignInState = { from: location.pathname + location.search + location.hash };
    return <Navigate to="/sign-in" replace state={state} />;
  }
  return children;
}
