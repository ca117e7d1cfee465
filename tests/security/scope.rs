//! What a personal token, a deleted organization and an organization's settings reach.
