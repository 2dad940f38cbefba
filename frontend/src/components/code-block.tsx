import { CopyButton } from "./copy-button";

/** A titled block of code (params, a result, a traceback) with a button that copies it. */
export function CodeBlock({
  title,
  text,
  testId,
  error = false,
  level = 3,
}: {
  title: string;
  text: string;
  testId?: string;
  error?: boolean;
  /** The heading's level where the block sits: 3 on a page, 4 inside a table row. */
  level?: 3 | 4;
}) {
  const Heading = level === 3 ? "h3" : "h4";
  return (
    <section>
      <div className="details__heading">
        <Heading>{title}</Heading>
        <CopyButton text={text} label={`Copy ${title.toLowerCase()}`} />
      </div>
      <pre className={error ? "code code--error" : "code"} data-testid={testId}>
        {text}
      </pre>
    </section>
  );
}
