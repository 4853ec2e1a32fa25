"""Vaccination schedules (docs/immunization.md): a schedule as data (schedule.py, files under
profiles/immunization/), the forecast (forecast.py), its ImmunizationRecommendation
(recommendation.py), and reading what the caller may see and storing the result (status.py)."""
