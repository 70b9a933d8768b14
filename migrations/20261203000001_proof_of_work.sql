-- The waiting room's door: whether joining costs a proof of work (never, always, or while
-- more than proof_of_work_joins_per_minute new buyers joined over the last minute).
ALTER TABLE onsales
    ADD COLUMN proof_of_work TEXT NOT NULL DEFAULT 'off'
        CHECK (proof_of_work IN ('off', 'always', 'auto')),
    ADD COLUMN proof_of_work_joins_per_minute INTEGER NOT NULL DEFAULT 3000
        CHECK (proof_of_work_joins_per_minute BETWEEN 1 AND 1000000);
