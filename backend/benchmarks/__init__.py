"""TaskLens benchmarks: `./dev bench` (or `python -m benchmarks`) from backend/."""
