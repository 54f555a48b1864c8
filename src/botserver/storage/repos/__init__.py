"""One repository per aggregate. Only this package writes SQL."""
