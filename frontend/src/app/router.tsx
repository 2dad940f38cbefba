import { Navigate, Route, Routes } from "react-router";
import { AppLayout } from "@/components/app-layout";
import { NotFoundPage } from "@/components/not-found-page";
import { RequireAuth, SignInPage } from "@/features/auth";
import { MonitoringPage } from "@/features/monitoring";

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/sign-in" element={<SignInPage />} />
      <Route
        element={
          <RequireAuth>
            <AppLayout />
          </RequireAuth>
        }
      >
        <Route index element={<Navigate to="/monitoring" replace />} />
        <Route path="monitoring" element={<MonitoringPage />} />
      </Route>
      <Route path="*" element={<NotFoundPage />} />
    </Routes>
  );
}
