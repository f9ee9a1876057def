"""What goes in and out of the API: one module per resource, plus the error body and shared fields."""
