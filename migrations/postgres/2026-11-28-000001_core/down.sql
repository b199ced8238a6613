DROP TABLE messages;
DROP TABLE users;
