//! Helpers shared by modules: argument access with clear errors, file writes in one round trip.
