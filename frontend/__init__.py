"""The web app's static files (served by inbox/frontend.py); a package only so that they ship in the wheel."""
