"""Result records and model cards: their format, schemas, reading and the model catalog."""
