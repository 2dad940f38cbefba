"""The slow work TaskLens exists to run: analyses of a git repository or a GitHub user."""
