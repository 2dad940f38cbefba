import { useDocumentTitle } from "@/lib/use-document-title";
import { Link, useLocation } from "react-router";

export function NotFoundPage() {
  const { pathname } = useLocation();
  useDocumentTitle("Not found");
  return (
    <main className="page page--narrow">
      <h1>Page not found</h1>
      <p className="muted">
        Nothing lives at <code>{pathname}</code>.
      </p>
      <p>
        <Link to="/monitoring">Go to monitoring</Link>
      </p>
    </main>
  );
}
