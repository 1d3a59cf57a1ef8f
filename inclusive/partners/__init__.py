"""Capital partners, their staff, and their partnerships with organizations."""
