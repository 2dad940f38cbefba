import { useQuery } from "@tanstack/react-query";
import { api, type Schemas, unwrap } from "@/lib/api-client";
import { useToken } from "@/lib/use-token";
import { authKeys } from "./keys";

export type WhoAmI = Schemas["WhoAmI"];
export type Role = Schemas["Role"];

/** GET /api/v1/me with a given token (not the stored one): used to check a token before signing in. */
export async function checkToken(token: string): Promise<WhoAmI> {
  return unwrap(
    await api.GET("/api/v1/me", {
      headers: { Authorization: `Bearer ${token}` },
    }),
  );
}

/** The signed-in caller's name and role (viewer | operator). */
export function useMe() {
  const token = useToken();
  return useQuery({
    queryKey: authKeys.me(token),
    queryFn: async (): Promise<WhoAmI> => {
      return unwrap(await api.GET("/api/v1/me"));
    },
    enabled: token !== null,
    staleTime: 5 * 60_000,
  });
}

/** Whether to offer operator actions (the server checks again: this only hides buttons). */
export function useCanOperate(): boolean {
  return useMe().data?.role === "operator";
}
