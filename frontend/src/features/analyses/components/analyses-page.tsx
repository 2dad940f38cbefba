import { useDocumentTitle } from "@/lib/use-document-title";
import { useCanOperate } from "@/features/auth";
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
        <p className="card muted">Viewers can read reports; sign in as an operator to start an analysis.</p>
      )}
      <RecentAnalyses />
    </main>
  );
}
