"""CI/CD for models: reports that compare a run with the champion, and PR comments."""
