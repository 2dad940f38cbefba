import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { formatCountOf } from "@/lib/format";
import { GithubReport } from "../components/github-report";
import { RepositoryReport } from "../components/repository-report";

describe("counts in reports read right for one and for many", () => {
  it("formatCountOf takes an irregular plural", () => {
    expect(formatCountOf(1, "public repository", "public repositories")).toBe("1 public repository");
    expect(formatCountOf(0, "public repository", "public repositories")).toBe("0 public repositories");
    expect(formatCountOf(1200, "follower")).toBe("1,200 followers");
  });

  it("a GitHub user with one repository and one follower", () => {
    render(
      <GithubReport
        result={{ profile: { login: "octo", public_repos: 1, followers: 1 }, pull_requests: {}, repositories: [] }}
      />,
    );
    expect(screen.getByTestId("github-report")).toHaveTextContent("octo · 1 public repository · 1 follower");
    expect(screen.getByText("None in this period.")).toBeInTheDocument();
  });

  it("plan progress read from one markdown file", () => {
    render(
      <RepositoryReport result={{ plan_progress: { files_read: ["README.md"], files_read_count: 1, files: [] } }} />,
    );
    expect(screen.getByTestId("plan-files-read")).toHaveTextContent("Checkboxes read from 1 markdown file");
    expect(screen.getByText("No contributors in this period.")).toBeInTheDocument();
  });
});
