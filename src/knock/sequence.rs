//! Sans-IO knock sequence tracker: `observe(knock, now)`; one attempt per (source, door).
