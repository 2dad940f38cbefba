import { useEffect } from "react";

/** Sets the tab's title to "<title> · TaskLens" while the page is shown. */
export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · TaskLens`;
  }, [title]);
}
