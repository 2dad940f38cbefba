export { useCanOperate, useMe, checkToken, type Role, type WhoAmI } from "./api/get-me";
export { RequireAuth } from "./components/require-auth";
export { SignInPage } from "./components/sign-in-page";
export { OperatorSignInLink } from "./components/operator-sign-in-link";
