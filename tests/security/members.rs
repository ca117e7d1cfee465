//! Who may change whom, across the API, SCIM and /Bulk.
