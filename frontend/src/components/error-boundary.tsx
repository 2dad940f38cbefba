import { Component, type ErrorInfo, type ReactNode } from "react";

type Props = {
  children: ReactNode;
  /** What to show instead; by default a whole-page message with a reload button. */
  fallback?: (error: Error) => ReactNode;
};

/** A rendering failure shows a way out instead of a blank page, or only blanks its own part. */
export class ErrorBoundary extends Component<Props, { error: Error | null }> {
  state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error("TaskLens: render failed", error, info.componentStack);
  }

  render() {
    if (this.state.error === null) return this.props.children;
    if (this.props.fallback) return this.props.fallback(this.state.error);
    return (
      <main className="page page--narrow">
        <div role="alert" className="card placeholder placeholder--error">
          <h1>Something went wrong</h1>
          <p>{this.state.error.message}</p>
          <button type="button" className="button" onClick={() => window.location.reload()}>
            Reload
          </button>
        </div>
      </main>
    );
  }
}
