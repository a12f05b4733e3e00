-- Idempotency keys keep a protocol-neutral outcome (the core's result or error) instead of an
-- HTTP-shaped response. Kept responses of the old shape are dropped (keys live for a day).
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys DROP COLUMN status_code;
ALTER TABLE idempotency_keys DROP COLUMN content_type;
ALTER TABLE idempotency_keys DROP COLUMN location;
