// Sends the form to the bank at once (the button stays for browsers without JavaScript).
document.getElementById("redirect").submit();
