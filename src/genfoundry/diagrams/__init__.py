"""PlantUML diagrams: screening of the source (security), one long-lived PlantUML process (process, launcher,
runtime), checks and renders with their errors and limits (renderer, report). No FastAPI, no database."""
