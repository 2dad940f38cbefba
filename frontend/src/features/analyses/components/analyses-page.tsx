import { useDocumentTitle } from "@/lib/use-document-title";
import { OperatorSignInLink, useCanOperate } from "@/features/auth";
import { AnalysisForm } from "./analysis-form";
import { RecentAnalyses } from "./recent-analyses";

export function AnalysesPage() {
  const canOperate = useCanOperate();
  useDocumentTitle("Analyses");
  return (
    <main className="page">
      <div className="page__header">
        <h1>Analyses</h1>
      </div>
      {canOperate ? (
        <AnalysisForm />
      ) : (
        <p className="card">
          <span className="muted">Viewers can read reports.</span> <OperatorSignInLink to="start an analysis" />
        </p>
      )}
      <RecentAnalyses />
    </main>
  );
}
