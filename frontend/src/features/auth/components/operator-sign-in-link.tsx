import { Link, useLocation } from "react-router";
import type { SignInState } from "./require-auth";

/**
 * What a viewer sees where an operator sees an action (Refresh, Retry, Cancel, the demo form):
 * a way to switch to an operator token, coming back here afterwards.
 */
export function OperatorSignInLink({ to }: { to: string }) {
  const location = useLocation();
  const state: SignInState = { from: location.pathname + location.search + location.hash, asOperator: true };
  return (
    <Link to="/sign-in" state={state} className="small" data-testid="operator-sign-in">
      Sign in as operator to {to}
    </Link>
  );
}
