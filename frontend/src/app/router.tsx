import { Navigate, Route, Routes } from "react-router";
import { AppLayout } from "./app-layout";
import { NotFoundPage } from "@/components/not-found-page";
import { AlertsPage } from "@/features/alerts";
import { AnalysesPage, AnalysisPage } from "@/features/analyses";
import { AuditPage } from "@/features/audit";
import { RequireAuth, SignInPage } from "@/features/auth";
import { FailuresPage } from "@/features/failures";
import { LiveProvider } from "@/features/live";
import { MonitoringPage } from "@/features/monitoring";
import { QueuesPage } from "@/features/queues";
import { SchedulesPage } from "@/features/schedules";
import { TaskPage } from "@/features/task-page";

export function AppRoutes() {
  return (
    <Routes>
      <Route path="/sign-in" element={<SignInPage />} />
      <Route
        element={
          <RequireAuth>
            <LiveProvider>
              <AppLayout />
            </LiveProvider>
          </RequireAuth>
        }
      >
        <Route index element={<Navigate to="/monitoring" replace />} />
        <Route path="monitoring" element={<MonitoringPage />} />
        <Route path="analyses" element={<AnalysesPage />} />
        <Route path="analyses/:kind/*" element={<AnalysisPage />} />
        <Route path="queues" element={<QueuesPage />} />
        <Route path="failures" element={<FailuresPage />} />
        <Route path="schedules" element={<SchedulesPage />} />
        <Route path="alerts" element={<AlertsPage />} />
        <Route path="tasks/:taskId" element={<TaskPage />} />
        <Route path="audit" element={<AuditPage />} />
        {/* Inside the layout: a mistyped address keeps the header and navigation. */}
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
