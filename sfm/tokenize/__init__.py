"""Science tokenization: number and field encodings for any Hugging Face backbone."""
