"""What an installer gets: kickstarts, preseeds, partition plans and layouts."""
