-- Every run's rows now live in assignment_chunks (converted by `stratum migrate` before this
-- step runs).
DROP TABLE assignments;
