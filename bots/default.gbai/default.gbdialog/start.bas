REM The default bot: greets the user, remembers the name, shows a menu.

name = GET USER MEMORY("name")
IF name = "" THEN
    TALK "Hello! I am the default bot."
    CALL AskName
ELSE
    TALK "Welcome back, ${name}!"
END IF

choice = ""
WHILE choice <> "Bye"
    ADD SUGGESTION "Tell me a joke"
    ADD SUGGESTION "What time is it?"
    ADD SUGGESTION "Change my name"
    ADD SUGGESTION "Bye"
    TALK "What would you like to do, ${name}?"
    HEAR choice AS "Tell me a joke", "What time is it?", "Change my name", "Bye"

    SELECT CASE choice
        CASE "Tell me a joke"
            CALL TellJoke
        CASE "What time is it?"
            TALK "It is " & FORMAT(NOW(), "HH:mm") & " (UTC)."
        CASE "Change my name"
            CALL AskName
        CASE ELSE
            TALK "Goodbye, ${name}! Come back soon."
    END SELECT
WEND

SUB AskName
    TALK "What is your name?"
    HEAR answer
    IF TRIM(answer) = "" THEN
        answer = "friend"
    END IF
    name = TRIM(answer)
    SET USER MEMORY "name", name
    TALK "Nice to meet you, ${name}!"
END SUB

' Jokes take turns, so every user hears all of them.
SUB TellJoke
    joke = GET USER MEMORY("joke") MOD 3 + 1
    SET USER MEMORY "joke", joke
    SELECT CASE joke
        CASE 1
            TALK "Why do programmers prefer dark mode? Because light attracts bugs."
        CASE 2
            TALK "There are 10 kinds of people: those who know binary and those who don't."
        CASE ELSE
            TALK "I would tell you a UDP joke, but you might not get it."
    END SELECT
END SUB
