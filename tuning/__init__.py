"""KerasTuner search over θ, β and α (planned: see the project's issues; not built yet)."""
