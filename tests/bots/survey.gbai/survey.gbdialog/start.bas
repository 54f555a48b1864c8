TALK "What is your name?"
HEAR name
TALK "How old are you, " & name & "?"
HEAR age AS INTEGER
TALK name & " is " & age & " years old."
